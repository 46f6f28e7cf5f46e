"""Datasets: the course COCO layout, the synthetic generator, the SVHN converter and transforms."""
