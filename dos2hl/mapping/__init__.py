"""Offline schema matching: propose how an oddly named export maps onto the canonical model."""
