"""Transit tickets: network, fares, rider cards, dynamic QR, validators, taps, capping."""
