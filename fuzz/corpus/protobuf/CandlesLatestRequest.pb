†
EUR/USD1h