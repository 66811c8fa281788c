-- gm picks the model (name, multiplier, description; Opus locked with its reason); the next answer
-- comes from it and still has the conversation's history.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local chat = T.send('What is a context manager?')
    T.wait_idle(chat)
    local first_conversation = chat.conversation_id
    T.ok(first_conversation, 'the conversation id is known')
    T.choose('Claude Sonnet 4.5  1.3×')  -- the row itself: Auto's description names Sonnet 4.5 too
    T.keys('gm')
    T.wait_notified('next messages use Claude Sonnet 4.5')
    local picker = T.selects[1]
    T.eq(picker.prompt, 'Switchboard model for the next messages', 'picker prompt')
    T.eq(#picker.items, 5, 'every model is listed')
    T.contains(picker.items[1], '● Auto', 'the selected model is marked')
    T.contains(table.concat(picker.items, '\n'), 'Claude Haiku 4.5  0.4×  The fastest', 'name, multiplier, description')
    T.contains(table.concat(picker.items, '\n'), 'Claude Opus 4.5  2.2×  locked: Claude Opus 4.5 needs Pro', 'locked')
    T.contains(picker.items[5], ' it on 2027-01-22)', 'the day Anthropic retires Opus 4.5')
    T.eq(picker.items[2]:find('retire'), nil, 'no retirement for Haiku 4.5')
    T.eq(require('switchboard').statusline():match('^Sonnet 4%.5 · '), 'Sonnet 4.5 · ', 'statusline model')
    T.send('And how do I write one?')
    T.wait_idle(chat)
    T.eq(chat.conversation_id, first_conversation, 'the conversation is kept')
    local text = T.text(chat.buf)
    T.contains(text, '## Claude Sonnet 4.5\nSimulated reply from claude-sonnet-4-5-20250929 (turn 2; 2 earlier messages)',
      'the new model answers with the history')
    T.contains(text, '*Claude Sonnet 4.5 · You chose Claude Sonnet 4.5 · ', 'its footer')
    T.contains(text, 'What is a context manager?', 'the first turn is still in the buffer')
  end,
}
