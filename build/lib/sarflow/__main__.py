"""`python -m sarflow` is the `sarflow` command."""

from .cli import main

if __name__ == "__main__":
    main()
