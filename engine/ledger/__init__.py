"""The ledger (台账): reading and writing the spreadsheets people keep, and importing them."""
