"""Local stand-ins for running creditwatch with no AWS account: moto, a provider simulator, a demo.

Powertools reads its service name when the Logger is created, so it is set before any import.
"""

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "creditwatch")
