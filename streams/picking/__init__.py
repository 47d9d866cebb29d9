"""The wave service: plans waves from orders.state.v1, takes pick confirmations over HTTP,
writes fulfilment.waves.v1 and the documents (`stockflow waves plan | run`)."""
