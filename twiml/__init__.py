"""Pure TwiML builders: plain data in, twilio `VoiceResponse`/`MessagingResponse` out."""
