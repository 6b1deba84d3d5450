
US-trade-balance-202604071430ÀÔæÂÖ3US"Trade BalanceBhighJUSD