"""Request and response models of the merchants domain's API."""
