-- The W3C trace context (traceparent/tracestate) of the RegistrationConfirmed/Promoted event that made the
-- registration billable. Issuing its invoice links to it, so the invoice's trace (which continues the
-- InvoiceDue) leads back to the registration's. NULL for rows projected before this migration.
ALTER TABLE billing_registration
    ADD COLUMN traceparent text,
    ADD COLUMN tracestate  text;
