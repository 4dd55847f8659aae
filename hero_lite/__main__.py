"""`python -m hero_lite` runs the `hero-lite` command line."""

from hero_lite.cli import main

if __name__ == "__main__":
    main()
