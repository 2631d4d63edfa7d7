"""The JSON shapes the API returns, one module per resource family, built from our rows.

Routes build no response objects inline: a field added or renamed here is added or renamed
everywhere that object appears (a job in `GET /v1/jobs/{id}` and in the 202 of an async call).
"""
