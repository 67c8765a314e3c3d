"""The city's clock: business days, tariffs, fare days, receipts and schedules run on Hanoi time.

Moments are stored in UTC; they are turned into Hanoi dates and times (UTC+7, no daylight saving) only
where a person or a rule sees them.
"""

from zoneinfo import ZoneInfo

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
