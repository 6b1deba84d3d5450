
D
US-trade-balance-202604071430ÀÔæÂÖ3US"Trade BalanceBhighJUSD
:
US-core-cpi-202604101430Àü²¾×3US"Core CPIBhighJUSD7ZTF8MTc3NTgzMTQwMDAwMHxVUy1jb3JlLWNwaS0yMDI2MDQxMDE0MzA	timescale