"""bulletin: curated news items in, per-topic feeds and weekly email digests out."""

__version__ = "0.1.0"
