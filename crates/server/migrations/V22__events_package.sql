-- The events moved to their own protobuf package (wowchat.users.events.v1);
-- rows still waiting in the outbox are published under the new type name.
UPDATE outbox
   SET message_type = replace(message_type, 'wowchat.users.v1.', 'wowchat.users.events.v1.')
 WHERE message_type LIKE 'wowchat.users.v1.%';
