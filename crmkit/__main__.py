"""``python -m crmkit``: the admin tool."""

from crmkit.cli import main

if __name__ == "__main__":
    main()
