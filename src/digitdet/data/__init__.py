"""Datasets: the course COCO layout (`coco`), its validation (`check`), image files and their limits
(`images`), a plain image folder (`folder`), the SVHN converter (`svhn`), the augmentations (`transforms`),
the datasets and loaders training and inference draw from (`loaders`) and the synthetic generator
(`data.synth`). It may import only the ground floor (config, errors, io, metrics, viz), nothing above.
"""
