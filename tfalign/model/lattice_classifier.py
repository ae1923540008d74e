"""The decoder's classifier at every node of the (clip, text) lattice, a block of rows at a time.

For a decoder without history the classifier's input at node (i, j) is made of
a part of row i (the video stack's top), a part of column j (the text stack's
top), the position features of the two cursors and a window of similarities
around (i, j); its hidden layer is

    hidden_ij = relu(rows_i + columns_j + W_p p_ij + (W_sim * sim)_ij)

where ``W_sim * sim`` is a 2-D correlation of the similarity maps with the
window's weights. The hidden layer of a whole-video training batch is the
largest tensor of training ([32, 396, 104, 64] floats: 337 MB) and autodiff
keeps several of it. Here it exists one block of rows at a time: the forward
pass keeps only the [B, T_v, T_s, 3] logits, and the backward pass computes
each block again before differentiating it (as ``tf.recompute_grad`` does for a
whole function), so memory no longer grows with the lattice's hidden width.
"""

import tensorflow as tf

# Elements of a block's hidden layer: about 16 MB in float32.
BLOCK_ELEMENTS = 1 << 22


def _window_kernel(kernel, channels, window):
    """[C * K * K, U] (channel-major, then offset a, then offset b) -> a conv2d kernel [K, K, C, U]."""
    return tf.transpose(tf.reshape(kernel, [channels, window, window, -1]), [1, 2, 0, 3])


def lattice_logits(rows, columns, padded_maps, clip_lengths, text_lengths, position_fn, position_kernel,
                   window_kernel, out_kernel, out_bias, window=4, block_elements=BLOCK_ELEMENTS):
    """Logits [B, T_v, T_s, K] at every node (natural order: i clips and j texts consumed).

    Args:
        rows: [B, T_v, U] what row i adds to the hidden pre-activation, or None
            (nothing: then ``padded_maps`` gives the number of rows).
        columns: [B, T_s, U] what column j adds (the bias included).
        padded_maps: [B, T_v + window - 1, T_s + window - 1, C] similarity maps,
            zero-padded so that node (i, j) reads rows i..i+window-1 and columns
            j..j+window-1; None without similarity features.
        clip_lengths, text_lengths: [B] int32; the cursors of node (i, j) are
            ``clip_lengths - 1 - i`` and ``text_lengths - 1 - j``.
        position_fn: (clip_cursor, text_cursor, clip_lengths, text_lengths) -> [..., P] float32.
        position_kernel: [P, U]; window_kernel: [C * window^2, U] or None;
        out_kernel: [U, K]; out_bias: [K].
        block_elements: about how many hidden values a block holds.
    """
    if rows is None and padded_maps is None:
        raise ValueError("lattice_logits needs rows or similarity maps (the number of rows comes from them)")
    # The tensors the logits are differentiated by, by name (the optional ones when given).
    given = {"rows": rows, "columns": columns, "position_kernel": position_kernel, "out_kernel": out_kernel,
             "out_bias": out_bias, "padded_maps": padded_maps, "window_kernel": window_kernel}
    given = {name: tensor for name, tensor in given.items() if tensor is not None}
    batch, num_texts, units = tf.shape(columns)[0], tf.shape(columns)[1], tf.shape(columns)[2]
    num_rows = tf.shape(padded_maps)[1] - (window - 1) if rows is None else tf.shape(rows)[1]
    block = tf.maximum(1, block_elements // tf.maximum(batch * num_texts * units, 1))
    rows_of = lambda start, size, t: _block_logits(start, size, t, clip_lengths, text_lengths, position_fn, window)
    return blocked_rows(rows_of, given, num_rows, block)


def _block_logits(start, size, t, clip_lengths, text_lengths, position_fn, window):
    """The logits of rows start..start+size-1: [B, size, T_s, K] (``t``: the tensors by name)."""
    columns = t["columns"]
    batch, num_texts = tf.shape(columns)[0], tf.shape(columns)[1]
    row_cursor = clip_lengths[:, None, None] - 1 - (start + tf.range(size))[None, :, None]
    column_cursor = text_lengths[:, None, None] - 1 - tf.range(num_texts)[None, None, :]
    shape = [batch, size, num_texts]
    # Padding nodes get cursors below 0; keep them finite (they are masked later).
    p = position_fn(tf.maximum(tf.broadcast_to(row_cursor, shape), 0),
                    tf.maximum(tf.broadcast_to(column_cursor, shape), 0),
                    clip_lengths[:, None, None], text_lengths[:, None, None])
    hidden = columns[:, None, :, :] + tf.tensordot(tf.cast(p, columns.dtype), t["position_kernel"], axes=1)
    if "rows" in t:
        hidden += t["rows"][:, start:start + size, None, :]
    if "padded_maps" in t:
        maps = t["padded_maps"][:, start:start + size + window - 1]
        kernel = _window_kernel(t["window_kernel"], tf.shape(maps)[-1], window)
        hidden += tf.nn.conv2d(maps, kernel, strides=1, padding="VALID")
    return tf.tensordot(tf.nn.relu(hidden), t["out_kernel"], axes=1) + t["out_bias"]


def blocked_rows(rows_of, tensors: dict, num_rows, block):
    """``rows_of(start, size, tensors)`` -> [B, size, ...] for every block of ``block``
    rows, concatenated along axis 1; its gradient recomputes each block under a
    tape (only the outputs are kept between the passes). Gradients are summed in
    float32, under mixed precision too."""
    names = list(tensors)
    num_blocks = (num_rows + block - 1) // block

    def block_at(index):
        start = index * block
        return start, tf.minimum(block, num_rows - start)

    @tf.custom_gradient
    def run(*values):
        named = dict(zip(names, values))

        def forward(index, outputs):
            out = rows_of(*block_at(index), named)
            return index + 1, outputs.write(index, tf.transpose(out, [1, 0, 2, 3]))  # rows first, for concat

        dtype = named[names[0]].dtype
        _, outputs = tf.while_loop(lambda index, _: index < num_blocks, forward,
                                   (0, tf.TensorArray(dtype, size=num_blocks, infer_shape=False)),
                                   parallel_iterations=1)

        def backward(d_outputs):
            def step(index, sums):
                start, size = block_at(index)
                with tf.GradientTape() as tape:
                    tape.watch(values)
                    out = rows_of(start, size, named)
                grads = tape.gradient(out, list(values), output_gradients=d_outputs[:, start:start + size])
                return index + 1, [s + tf.cast(g, tf.float32) for s, g in zip(sums, grads)]

            zeros = [tf.zeros_like(v, tf.float32) for v in values]
            _, sums = tf.while_loop(lambda index, _: index < num_blocks, step, (0, zeros), parallel_iterations=1)
            return [tf.cast(s, v.dtype) for s, v in zip(sums, values)]

        return tf.transpose(outputs.concat(), [1, 0, 2, 3]), backward

    return run(*[tensors[name] for name in names])


def of_model(model, stacks):
    """The lattice logits of a LatticeAligner: its classifier's first
    layer split by input block (stack tops, positions, similarity window) so that
    [v_i, s_j, p_ij, sim_ij] is never concatenated."""
    from tfalign.data.batching import to_natural
    from tfalign.model.classifier_inputs import NUM_POSITION_FEATURES, POSITION_FUNCTIONS, WINDOW_OFFSETS

    clip_lengths, text_lengths = stacks["clip_lengths"], stacks["text_lengths"]
    video, text = to_natural(stacks["video"], clip_lengths), to_natural(stacks["text"], text_lengths)
    dtype = video.dtype
    kernel = tf.cast(model.hidden.kernel, dtype)
    units = model.units if model.stack_features else 0
    positions = NUM_POSITION_FEATURES[model.position]
    columns = tf.cast(model.hidden.bias, dtype) * tf.ones_like(text[:, :, :1])
    rows = None  # without stack features (the model checks it has similarities then)
    if model.stack_features:
        rows = tf.matmul(video, kernel[:units])
        columns += tf.matmul(text, kernel[units:2 * units])
    return lattice_logits(rows, columns, stacks.get("similarity_maps"), clip_lengths, text_lengths,
                          POSITION_FUNCTIONS[model.position], kernel[2 * units:2 * units + positions],
                          kernel[2 * units + positions:] if model.similarity_units else None,
                          tf.cast(model.logits_layer.kernel, dtype), tf.cast(model.logits_layer.bias, dtype),
                          window=len(WINDOW_OFFSETS))
