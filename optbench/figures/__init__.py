"""Paper figures: ``optbench figure NAME`` runs (or reuses) a preset's sweep, draws it, and judges
whether the paper's claim held. Presets are data (configs/figure/NAME.yaml); each names the
module here that draws and judges it (its ``kind``)."""
