"""Online micro-gesture recognition (MiGA Track 2): scoring detected segments in whole videos."""
