"""Tuition: schools' students and fee schedules, invoices, payments, reminders, reports and imports."""
