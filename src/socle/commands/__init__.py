"""The `socle` subcommands, one module per area; :mod:`socle.cli` registers them."""
