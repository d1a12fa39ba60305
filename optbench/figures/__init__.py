"""Paper figures: ``optbench figure NAME`` runs (or reuses) a preset's sweep, analyses it, judging
whether the paper's claim held, and draws it. Presets are data (configs/figure/NAME.yaml); each
names its ``kind``, an entry of :mod:`optbench.figures.kinds`."""
