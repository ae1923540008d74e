"""Episodes, the action oracle, datasets and the tf.data input pipeline."""
