"""``python -m sm_pixel_ce`` / ``sm-pixel-ce``: the package's command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
