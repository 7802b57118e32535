"""mgcli: micro-gesture recognition and emotion prediction on iMiGUE, as staged commands."""

__version__ = "0.1.0"
