"""HTTP surfaces, one blueprint each: voice, sms, api, studio. Views parse, call, respond."""
