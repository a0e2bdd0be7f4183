"""Command-line entry points (thin argparse ``main()``s, installed as console scripts)."""
