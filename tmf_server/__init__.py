"""TMF656 Service Problem Management server for customer QoS performance degradation reports."""
