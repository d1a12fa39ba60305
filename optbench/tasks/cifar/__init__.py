"""CIFAR-10/100 classification: archive or synthetic data held on the device, batched on-device
augmentation, the edge-of-stability networks, ResNet-18 and an airbench-style net."""
