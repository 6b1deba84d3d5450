
US-core-cpi-202604101430Àü²¾×3US"Core CPIBhighJUSD