"""The tickets domain's services, one module per role: network, keys, cards, validators, taps, fares."""
