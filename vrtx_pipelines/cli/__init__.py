"""The ``vrtx`` command line and the one-machine development platform."""
