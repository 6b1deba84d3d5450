„
EUR/USDx