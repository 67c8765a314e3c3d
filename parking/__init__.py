"""Parking: zones, spots, tariffs, spot search, parking sessions and enforcement look-up."""
