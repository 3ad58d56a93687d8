// The ten event types and what a hook receives for each (fields as in layers/shared/webhooks/events.py).

export const EVENT_TYPES = [
  ["click", "A link in a mail was clicked", "id, type, timestamp, time, recipient, ip, original (the link), useragent, referer, tags"],
  ["open", "A mail was opened", "id, type, timestamp, time, recipient, ip, useragent, referer, tags"],
  ["bounce", "A mail came back", "id, type, timestamp, time, recipient, envelope, mime (the whole returned message), tags"],
  ["failure", "A mail could not be delivered", "id, type, timestamp, time, recipient, action, state, code, extended, description, tags"],
  ["delivery", "A mail was delivered", "id, type, timestamp, time, recipient, code, extended, description, tags"],
  ["create", "A profile or subprofile was created", "type, parameters, timestamp, time, profile, database, created, modified, fields, interests (subprofile: subprofile, collection)"],
  ["update", "A profile or subprofile was changed", "type, parameters, timestamp, time, profile, database, created, modified, fields, interests (subprofile: subprofile, collection)"],
  ["delete", "A profile or subprofile was deleted", "type, timestamp, time, profile, database, fields (subprofile: subprofile, collection)"],
  ["unsubscribe", "A recipient unsubscribed", "id, type, timestamp, time, database, profile, mailing"],
  ["abuse", "A recipient reported a mail as abuse", "id, type, emailfrom, mime"],
];

export const STATUSES = [
  ["pending_validation", "Pending validation"],
  ["active", "Active"],
  ["validation_failed", "Validation failed"],
  ["disabled", "Disabled"],
];

export function statusLabel(status) {
  const found = STATUSES.find(([value]) => value === status);
  return found ? found[1] : status;
}
