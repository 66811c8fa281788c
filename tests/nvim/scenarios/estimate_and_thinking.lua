-- Typing shows what the message would cost on the selected model; :Switchboard think turns on extended
-- thinking, shown as a quote above the answer.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local chat = T.chat()
    chat:focus_prompt(false)
    T.keys('iHow do I read a file in Python?<Esc>')
    local transcript = require('switchboard.transcript')
    local function heading_hint()
      local row = transcript.prompt_row(chat.buf)
      local marks = vim.api.nvim_buf_get_extmarks(chat.buf, transcript.ns, { row, 0 }, { row, -1 }, { details = true })
      local text = ''
      for _, chunk in ipairs(marks[1] and marks[1][4].virt_text or {}) do
        text = text .. chunk[1]
      end
      return text
    end
    T.wait(function()
      return heading_hint():find('≈', 1, true)
    end, 'the estimate on the prompt heading')
    local estimate = chat.last_estimate
    T.eq(estimate.modelId, 'auto', 'the selected model is estimated')
    T.contains(heading_hint(), ('≈ %s cr on Auto'):format(require('switchboard.status').format_credits(
      estimate.estimatedCredits)), 'the hint')

    vim.cmd('Switchboard think 2048')
    T.wait_notified('thinking on, 2048 tokens')
    T.send('Think about it')
    T.wait_idle(chat)
    local text = T.text(chat.buf)
    T.contains(text, '> **Thinking**\n>\n> Simulated thinking by', 'the thinking quote')
    T.ok(chat.last_result.thinking, 'the server returned thinking')
    T.lacks(heading_hint(), '≈', 'the estimate is cleared once sent')
  end,
}
