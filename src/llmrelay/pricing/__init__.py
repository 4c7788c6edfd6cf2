"""What tokens cost: a price per model, and a request's cost from its usage."""
