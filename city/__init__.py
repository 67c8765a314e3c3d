"""The composition root: the app factory, the `hanoipay` command and the demo, wiring the domains."""
