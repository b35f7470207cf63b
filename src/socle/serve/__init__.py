"""The operations console: `socle serve`."""
