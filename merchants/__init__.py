"""Merchants: staff, market stalls and VietQR, tuition billing, payouts and statements."""
