"""creditwatch: credit-balance monitoring for B2B data APIs."""
