"""Chains tandem's stages, evaluates and reports; owns the `tandem` command line."""
