-- The chat buffer's text: a heading per turn, the prompt area at the bottom (under the last
-- "## You"), answers inserted above it and streamed in place. Answers are found from the prompt
-- heading up, so edits elsewhere in the buffer do not confuse the rendering. A cursor in the prompt
-- area stays there as lines go in above it, so its window follows the answer without being moved.
local M = {}

M.ns = vim.api.nvim_create_namespace('switchboard_chat')
M.context_ns = vim.api.nvim_create_namespace('switchboard_context')
M.PROMPT_HEADING = '## You'
local TITLE = '# Switchboard'

local function set(buf, first, last, lines)
  vim.api.nvim_buf_set_lines(buf, first, last, false, lines)
end

local function prompt_mark(buf)
  return vim.b[buf].switchboard_prompt_mark
end

-- Row (0-based) of the prompt heading; it is re-created at the end if it was deleted.
function M.prompt_row(buf)
  local mark = prompt_mark(buf)
  if mark then
    local pos = vim.api.nvim_buf_get_extmark_by_id(buf, M.ns, mark, {})
    if pos[1] and vim.api.nvim_buf_get_lines(buf, pos[1], pos[1] + 1, false)[1] == M.PROMPT_HEADING then
      return pos[1]
    end
  end
  local count = vim.api.nvim_buf_line_count(buf)
  set(buf, count, count, { '', M.PROMPT_HEADING, '' })
  M.mark_prompt(buf, count + 1)
  return count + 1
end

local KEYS_HINT = '<CR>/<C-s> send · gm model · gr retry · gy yank code · gn new · <C-c> stop'

function M.mark_prompt(buf, row)
  local old = prompt_mark(buf)
  local virt = { { '  ', 'Comment' } }
  local hint = vim.b[buf].switchboard_prompt_hint
  if hint and hint ~= '' then
    table.insert(virt, { hint, 'SwitchboardEstimate' })
    table.insert(virt, { ' · ', 'Comment' })
  end
  table.insert(virt, { KEYS_HINT, 'Comment' })
  vim.b[buf].switchboard_prompt_mark = vim.api.nvim_buf_set_extmark(buf, M.ns, row, 0, {
    id = old,
    virt_text = virt,
    virt_text_pos = 'eol',
  })
end

-- A short text before the keys' hint on the prompt heading (the estimate of the next message).
function M.set_prompt_hint(buf, hint)
  vim.b[buf].switchboard_prompt_hint = hint
  M.mark_prompt(buf, M.prompt_row(buf))
end

function M.reset(buf, title)
  set(buf, 0, -1, { TITLE .. (title and (' · ' .. title) or ''), '', M.PROMPT_HEADING, '' })
  M.mark_prompt(buf, 2)
end

-- The prompt typed under the last heading, trimmed.
function M.input(buf)
  local row = M.prompt_row(buf)
  local lines = vim.api.nvim_buf_get_lines(buf, row + 1, -1, false)
  return vim.trim(table.concat(lines, '\n'))
end

function M.set_input(buf, text)
  local row = M.prompt_row(buf)
  set(buf, row + 1, -1, vim.split(text, '\n', { plain = true }))
end

function M.context_label(item)
  local path = vim.uri_to_fname(item.uri)
  local rel = vim.fn.fnamemodify(path, ':~:.')
  if item.range then
    return ('> Context: `%s` lines %d-%d'):format(rel, item.range.start.line + 1, item.range['end'].line + 1)
  end
  return ('> Context: `%s`'):format(rel)
end

-- Inserts lines just above the prompt heading, keeping one blank line before it.
local function insert_above_prompt(buf, lines)
  local row = M.prompt_row(buf)
  set(buf, row, row, lines)
end

function M.add_user_turn(buf, prompt, context)
  local lines = { M.PROMPT_HEADING }
  vim.list_extend(lines, vim.split(prompt, '\n', { plain = true }))
  for _, item in ipairs(context or {}) do
    table.insert(lines, M.context_label(item))
  end
  table.insert(lines, '')
  insert_above_prompt(buf, lines)
end

-- An answer section, empty for now; returns the answer's rendering state.
function M.begin_answer(buf, heading)
  insert_above_prompt(buf, { '## ' .. heading, '', '' })
  return { buf = buf, text = '', lines = 1, heading = heading }
end

-- The answer occupies the `answer.lines` lines above the blank line before the prompt heading.
local function body_range(answer)
  local last = M.prompt_row(answer.buf) - 1
  return last - answer.lines, last
end

function M.set_heading(answer, heading)
  local first = body_range(answer)
  answer.heading = heading
  set(answer.buf, first - 1, first, { '## ' .. heading })
end

function M.append(answer, delta)
  answer.text = answer.text .. delta
  local _, last = body_range(answer)
  local tail = vim.api.nvim_buf_get_lines(answer.buf, last - 1, last, false)[1] or ''
  local lines = vim.split(tail .. delta, '\n', { plain = true })
  set(answer.buf, last - 1, last, lines)
  answer.lines = answer.lines + #lines - 1
end

-- Replaces the whole answer: its text, then the notes under it (footer, error).
function M.render(answer, text, notes)
  answer.text = text
  local first, last = body_range(answer)
  local lines = vim.split(text, '\n', { plain = true })
  if notes and #notes > 0 then
    table.insert(lines, '')
    vim.list_extend(lines, notes)
  end
  set(answer.buf, first, last, lines)
  answer.lines = #lines
end

-- The fenced code block under or nearest above the cursor (else the first below).
function M.code_block_at(buf, row)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local blocks, open = {}, nil
  for i, line in ipairs(lines) do
    if line:match('^%s*```') then
      if open then
        table.insert(blocks, { first = open, last = i })
        open = nil
      else
        open = i
      end
    end
  end
  local best
  for _, b in ipairs(blocks) do
    if b.first <= row then
      best = b
    elseif not best then
      best = b
      break
    end
  end
  if not best then
    return nil
  end
  return table.concat(vim.list_slice(lines, best.first + 1, best.last - 1), '\n'), best
end

return M
