"""EMA 9/21 trend with RSI and volume filters on 5m bars (one file per released version, never
edited)."""
