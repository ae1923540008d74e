"""Alignment metrics and classical baselines."""
