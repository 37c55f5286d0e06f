"""SEC (Seed, Expand and Constrain) for weakly-supervised segmentation, in MXNet."""
