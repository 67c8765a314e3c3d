"""What the transit routers share: the JSON body check."""

from fastapi import Depends

from hanoipay.http import require_json

JSON = [Depends(require_json)]
