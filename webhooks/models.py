# Provider receivers and the inbox table arrive with the webhooks issue.
