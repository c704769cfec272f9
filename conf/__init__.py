"""boolnas's configuration (Hydra YAML), shipped as package data: installed, conf/ is
``boolnas.conf`` and the command-line tools find it with importlib.resources."""
