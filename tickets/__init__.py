"""Transit tickets: network and fares, rider cards, dynamic QR, validators, taps and capping (a later issue)."""
