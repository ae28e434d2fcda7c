"""sarflow: landslide mapping from Sentinel-1 radar (Pan & Shi 2023, DPPA-UNet).

Stages live in modules named after what they do (see README's package map); this package
root stays import-light so that ``sarflow --help`` is fast.
"""

__version__ = "0.1.0"
